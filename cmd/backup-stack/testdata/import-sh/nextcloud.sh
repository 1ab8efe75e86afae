# stacks/nextcloud.sh: the seed README's example with maintenance mode
# hooks. The required variables are as the seed README's "Required
# variables" describes them.
STACK_NAME="nextcloud"
UNIT="nextcloud-stack.service"
PROJECT_LABEL="nextcloud"
DUPLICATI_JOBS=(
  "nextcloud"
  "nextcloud-db"
)
STOP_TIMEOUT=120
START_TIMEOUT=300

NC_APP_CONTAINER="nextcloud-app"

stack_pre_stop() {
  podman exec -u www-data "${NC_APP_CONTAINER}" php occ maintenance:mode --on >/dev/null 2>&1 || true
}

stack_post_start() {
  podman exec -u www-data "${NC_APP_CONTAINER}" php occ maintenance:mode --off >/dev/null 2>&1 || true
}
