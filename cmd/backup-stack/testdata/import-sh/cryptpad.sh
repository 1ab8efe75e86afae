# stacks/cryptpad.sh: the seed README's example of an on-demand stack
# (it freezes the Zoopa socket). The required variables are as the seed
# README's "Required variables" describes them.
STACK_NAME="cryptpad"
UNIT="cryptpad-stack.service"
PROJECT_LABEL="cryptpad"
DUPLICATI_JOBS=( "cryptpad" )

RESTORE_POLICY="previous"
FREEZE_ONDEMAND="yes"
ONDEMAND_SOCKET="zoopa-ondemand@cryptpad.socket"
ONDEMAND_SERVICE="zoopa-ondemand@cryptpad.service"
