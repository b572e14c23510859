//! Linux: /proc/<pid>/stat, its state (field 3) and its start time in
//! clock ticks since boot (field 22). The command name (field 2) is in
//! parentheses and may itself hold spaces and parentheses, so the fields
//! are counted from the last ')'.

pub fn start_mark(pid: u32) -> Option<u64> {
  let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
  let after_name = &stat[stat.rfind(')')? + 1..];
  let mut fields = after_name.split_ascii_whitespace();
  let state = fields.next()?;
  if state == "Z" || state == "X" {
    return None;
  }
  // Field 22 is the 20th after the state (field 3).
  fields.nth(18)?.parse().ok()
}
