#!/bin/sh
# Start/stop the private Postfix + Dovecot test instance; see pf.py.
#   sh tests/servers/pf.sh start DIR    then:  . DIR/ports.env
#   sh tests/servers/pf.sh stop DIR
#   sh tests/servers/pf.sh status DIR
exec /usr/bin/python3 "$(dirname "$0")/pf.py" "$@"
