#!/bin/sh
echo "1..0 # SKIP cmocka not found at configure time (install libcmocka-dev)"
