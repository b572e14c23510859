//! Linux: /proc/<pid>/stat, its state (field 3) and its start time in
//! clock ticks since boot (field 22). The command name (field 2) is in
//! parentheses and may itself hold spaces and parentheses, so the fields
//! are counted from the last ')'.

use super::Life;

pub fn life(pid: u32) -> Life {
  let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
    Ok(stat) => stat,
    // No such entry: gone, or hidden from us (hidepid); `life` asks kill.
    Err(_) => return Life::Unknown,
  };
  let Some(after_name) = stat.rfind(')').map(|end| &stat[end + 1..]) else {
    return Life::Unknown;
  };
  let mut fields = after_name.split_ascii_whitespace();
  match fields.next() {
    Some("Z" | "X") => return Life::Dead,
    Some(_) => {}
    None => return Life::Unknown,
  }
  // Field 22 is the 20th after the state (field 3).
  match fields.nth(18).and_then(|field| field.parse().ok()) {
    Some(mark) => Life::Alive(mark),
    None => Life::Unknown,
  }
}
