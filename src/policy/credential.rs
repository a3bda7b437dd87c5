//! placeholder: credential
