//! Load generator for Sluicegate (skeleton; grows in the loadtest issue).
fn main() {
    println!("loadtest: not implemented yet; see the loadtest issue");
}
