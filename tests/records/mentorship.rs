//! (issue 7: mentorship; filled in by its branch)
