//! (issue 7: reports; filled in by its branch)
