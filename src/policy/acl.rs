//! STUB (replaced by the helper's module at merge).
#![allow(dead_code)]
#[derive(Debug, thiserror::Error)]
#[error("bad pattern")]
pub struct AclError;
#[derive(Debug, Clone, Default)]
pub struct Acl(Vec<String>);
impl Acl {
    pub fn parse(p: &[String]) -> Result<Acl, AclError> {
        Ok(Acl(p.to_vec()))
    }
    pub fn none() -> Acl {
        Acl(Vec::new())
    }
    pub fn allows(&self, topic: &str, _sub: Option<&str>) -> bool {
        self.0.iter().any(|p| p == "**" || p == topic)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
