//! TODO(owner of this module): see the issue.
