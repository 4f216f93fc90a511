# Runs inside the guide's example image, fed to `bash -s` by tests/container/run.sh: the
# user it provisions logs in through the real libpam (pamtester) with a code from oathtool;
# a wrong code and a replayed code are refused. Prints "ok"/"FAIL" lines; exit 1 on a FAIL.
set -u
failed=0
login() { # code: 0 if pamtester let alice in
    printf '%s\n' "$1" | pamtester totp-demo alice authenticate >/tmp/login.out 2>&1
}
expect() { # ok|refused what code
    local got=refused
    if login "$3"; then got=ok; fi
    if [[ $got == "$1" ]] && grep -q 'Verification code:' /tmp/login.out; then
        echo "ok - $2"
    else
        echo "FAIL - $2: wanted $1, got $got"
        sed 's/^/    /' /tmp/login.out
        failed=1
    fi
}

now=$(date +%s)
# The codes of the previous, current and next steps: a wrong code must be none of them.
near=$(oathtool --totp -b -N "@$((now - 30))" -w 2 "$TOTP_SECRET")
wrong=123456
while grep -qx "$wrong" <<<"$near"; do wrong=$(((wrong + 1) % 1000000)); done
wrong=$(printf '%06d' "$wrong")
right=$(oathtool --totp -b "$TOTP_SECRET")

expect refused "a wrong code is refused" "$wrong"
expect ok "the code from oathtool logs alice in" "$right"
expect refused "the same code again is refused (replay)" "$right"
exit "$failed"
