# stacks/_template.sh: every variable and hook the seed README documents
# ("Per-stack configuration files"), reconstructed from it.

# Required
STACK_NAME="example"
UNIT="example-stack.service"
PROJECT_LABEL="example"
DUPLICATI_JOBS=( "example" "example-db" )

# Optional (seconds)
STOP_TIMEOUT=90
START_TIMEOUT=600

# previous (default) | always
RESTORE_POLICY="always"

# On-demand freeze (Zoopa)
FREEZE_ONDEMAND="yes"
ONDEMAND_SOCKET="zoopa-ondemand@example.socket"
ONDEMAND_SERVICE="zoopa-ondemand@example.service"

# Hooks (optional)
stack_pre_stop()    { podman exec example-app example-cli flush; }
stack_post_stop()   { :; }
stack_pre_backup()  { echo "backing up ${STACK_NAME}"; }
stack_post_backup() { echo "backed up ${STACK_NAME}"; }
stack_pre_start()   { :; }
stack_post_start()  { :; }
stack_verify() {
  curl -fsS http://127.0.0.1:8080/health >/dev/null
}
