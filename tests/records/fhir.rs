//! (issue 7: fhir; filled in by its branch)
