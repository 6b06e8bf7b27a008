#!/usr/bin/env bash
# `make run`: migrate, start the simulated airline programme (partnersim) and
# the mail catcher (mailcatcher), seed the demo coalition and run the hub
# (API, console, portal and worker) until Ctrl-C. Expects scripts/services.sh
# to have written .data/services.env and bin/hub, bin/partnersim and
# bin/mailcatcher to be built.
set -euo pipefail
cd "$(dirname "$0")/.."
. .data/services.env
mkdir -p .data
KEYFILE=.data/partnersim.key
[ -s "$KEYFILE" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$KEYFILE"
# A stable demo password for staff and the demo member, kept across runs.
[ -s .data/demo-password ] || echo "demo-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')" >.data/demo-password
export HUB_DEMO_PASSWORD="${HUB_DEMO_PASSWORD:-$(cat .data/demo-password)}"
SIM_ADDR=${HUB_PARTNERSIM_ADDR:-127.0.0.1:8091}
export HUB_DEMO_PARTNERSIM_URL="http://$SIM_ADDR"
export HUB_DEMO_PARTNERSIM_KEY="$(cat "$KEYFILE")"
# Local development: webhooks may go to receivers on this machine over plain
# http (production leaves this unset: https to public hosts only).
export HUB_WEBHOOK_ALLOW_LOOPBACK="${HUB_WEBHOOK_ALLOW_LOOPBACK:-1}"

# The hub's mail goes to the local catcher unless HUB_SMTP_URL says otherwise.
MAIL_SMTP_ADDR=${HUB_MAILCATCHER_SMTP_ADDR:-127.0.0.1:1025}
MAIL_WEB_ADDR=${HUB_MAILCATCHER_WEB_ADDR:-127.0.0.1:8025}
export HUB_SMTP_URL="${HUB_SMTP_URL:-smtp://$MAIL_SMTP_ADDR}"

./bin/hub migrate up
./bin/partnersim -addr "$SIM_ADDR" -key "$HUB_DEMO_PARTNERSIM_KEY" -pending-polls 1 -hold-prefix HOLD >.data/partnersim.log 2>&1 &
SIM_PID=$!
./bin/mailcatcher -smtp "$MAIL_SMTP_ADDR" -http "$MAIL_WEB_ADDR" -dir .data/mail >.data/mailcatcher.log 2>&1 &
MAIL_PID=$!
trap 'kill $SIM_PID $MAIL_PID 2>/dev/null || true' EXIT
./bin/hub seed
echo "partner simulator (SkyWays SkyMiles) on $HUB_DEMO_PARTNERSIM_URL, log in .data/partnersim.log"
echo "mail catcher      http://$MAIL_WEB_ADDR  (every mail the hub sends; SMTP on $MAIL_SMTP_ADDR, log in .data/mailcatcher.log)"
./bin/hub all
