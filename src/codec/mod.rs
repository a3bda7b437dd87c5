//! Sans-IO wire formats: bytes in, values out (and back). No runtime imports here.
pub mod event_id;
pub mod hook_answer;
pub mod http1;
pub mod query;
pub mod sse;
pub mod sse_parse;
pub mod topic;
pub mod websub_form;
pub mod ws;
