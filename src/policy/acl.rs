//! placeholder: acl
