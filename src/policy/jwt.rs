//! placeholder: jwt
