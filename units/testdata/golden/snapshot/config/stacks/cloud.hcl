# Snapshot mode: the stack is down only while its data is frozen.
stack "cloud" {
  jobs = ["cloud"]
  snapshot {
    paths  = ["/srv/cloud/data", "/srv/cloud/db"]
    method = "reflink"
    into   = "/srv/snapshots"
  }
  hook "post_stop" {
    command = ["/usr/bin/logger", "frozen"]
  }
  hook "pre_start" {
    command = ["/usr/bin/logger", "pre_start"]
  }
  hook "post_start" {
    command = ["podman", "exec", "cloud-app", "occ", "maintenance:mode", "--off"]
  }
  hook "pre_backup" {
    command = ["/usr/bin/sync"]
  }
  hook "post_backup" {
    command = ["/usr/bin/logger", "done"]
  }
}
