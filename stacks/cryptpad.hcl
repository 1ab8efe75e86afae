# CryptPad, started on demand by a socket. The socket and the service it
# starts are frozen for the backup, so a visitor cannot start the stack
# while its data is copied; afterwards, with the "previous" policy, only
# what was active before the backup is started again.
stack "cryptpad" {
  # unit defaults to "cryptpad-stack.service", project_label to "cryptpad".
  jobs           = ["cryptpad"]
  schedule       = "*-*-* 04:00:00"
  restore_policy = "previous"

  on_demand {
    socket  = "zoopa-ondemand@cryptpad.socket"
    service = "zoopa-ondemand@cryptpad.service"
  }
}
