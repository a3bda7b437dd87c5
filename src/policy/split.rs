//! placeholder: split
