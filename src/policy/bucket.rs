//! placeholder: bucket
