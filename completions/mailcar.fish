# fish completion for mailcar(1)
# mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
#
# Every option of `mailcar --help`, no more, no less: tests/integration/
# test_docs.py compares this file with the program.

# Account names defined in the files mailcar would read (or in the -C file).
function __mailcar_accounts
    set -l files /etc/mailcar.conf /usr/local/etc/mailcar.conf
    set -l words (commandline -opc)
    set -l conf
    for i in (seq (count $words))
        switch $words[$i]
            case -C
                set -l j (math $i + 1)
                if test $j -le (count $words)
                    set conf $words[$j]
                end
            case '-C?*'
                set conf (string sub -s 3 -- $words[$i])
            end
    end
    if test -n "$conf"
        set -a files (string replace -r '^~' $HOME -- $conf)
    else if test -n "$XDG_CONFIG_HOME"
        set -a files $XDG_CONFIG_HOME/mailcar/config $HOME/.mailcarrc
    else
        set -a files $HOME/.config/mailcar/config $HOME/.mailcarrc
    end
    for f in $files
        if test -f $f -a -r $f
            string replace -rf '^\s*account\s+([^:\s]+).*$' '$1' <$f
        end
    end
end

# Recipients are addresses, not files.
complete -c mailcar -f

# Sending
complete -c mailcar -s t -d 'read recipients from To, Cc, Bcc (or the newest Resent- block)'
complete -c mailcar -s i -d 'a line with a lone dot does not end the message'
complete -c mailcar -s f -x -d 'envelope sender'
complete -c mailcar -s r -x -d 'envelope sender'
complete -c mailcar -s F -x -d 'full name for an added From header'
complete -c mailcar -s N -x -a 'never success failure delay' -d 'DSN notify'
complete -c mailcar -s R -x -a 'full hdrs' -d 'DSN return'
complete -c mailcar -s V -x -d 'DSN envelope id'
complete -c mailcar -s B -x -a '7BIT 8BITMIME' -d 'body type'
complete -c mailcar -s C -r -F -d 'configuration file (replaces the user configuration)'
complete -c mailcar -s a -x -a '(__mailcar_accounts)' -d 'account to use'
complete -c mailcar -s v -d 'show the SMTP transcript on standard error'
complete -c mailcar -l input -r -F -d 'send FILE instead of standard input (repeatable)'
complete -c mailcar -l password-fd -x -d 'read the password from file descriptor N'

# Modes
complete -c mailcar -s b -x -a 'm\t"send (default)" v\t"verify recipients" s\t"SMTP on standard input" p\t"list the queue" i\t"rebuild aliases"' -d 'mode'
complete -c mailcar -s q -d 'deliver queued messages (-qI ID, -qR DOMAIN, -q30m loop)'
complete -c mailcar -l queue-delete -x -d 'remove a message from the queue'
complete -c mailcar -l queue-hold -x -d 'keep a queued message from being delivered'
complete -c mailcar -l queue-release -x -d 'deliver a held message again'
complete -c mailcar -l json -d 'with -bp: the queue as JSON'
complete -c mailcar -s S -d 'show what the server offers and exit'
complete -c mailcar -l serverinfo -d 'show what the server offers and exit'
complete -c mailcar -l pretend -d 'print the resolved settings (secrets masked) and exit'
complete -c mailcar -l check -d 'try the configuration (connect, TLS, certificate, AUTH); send nothing'
complete -c mailcar -l configure -x -d 'print a configuration for ADDRESS from its SRV records or known providers'
complete -c mailcar -l import -r -F -d 'print an msmtp, ssmtp, dma or nullmailer configuration as mailcar configuration'
complete -c mailcar -l help -d 'show the options'
complete -c mailcar -l version -d 'show the version and build features'

# Accepted and ignored (each consumes its argument)
complete -c mailcar -s o -x -a 'i em odi' -d 'sendmail option (ignored, but -oi is -i)'
complete -c mailcar -s O -x -d 'sendmail option (ignored)'
complete -c mailcar -s h -x -d 'hop count (ignored)'
complete -c mailcar -s L -x -d 'syslog tag (ignored)'
complete -c mailcar -s A -x -d 'alternate configuration (ignored)'
complete -c mailcar -s X -x -d 'traffic log file (ignored, never written)'
complete -c mailcar -s G -d 'relay submission (ignored)'
complete -c mailcar -s U -d 'initial submission (ignored)'
complete -c mailcar -s m -d 'send to me too (ignored)'
complete -c mailcar -s n -d 'no aliasing (ignored)'

# Every configuration key (see mailcar.conf(5))
complete -c mailcar -l host -x -a '(__fish_print_hostnames)' -d 'SMTP server host name or address'
complete -c mailcar -l port -x -d 'server port (default 25, 465 with tls_starttls off)'
complete -c mailcar -l protocol -x -a 'smtp lmtp' -d 'protocol to speak: smtp or lmtp'
complete -c mailcar -l socket -r -F -d 'Unix domain socket to connect to instead of host and port'
complete -c mailcar -l source-ip -x -d 'local address to bind the connection to'
complete -c mailcar -l address-family -x -a 'any ipv4 ipv6' -d 'which addresses of host to try'
complete -c mailcar -l proxy-host -x -a '(__fish_print_hostnames)' -d 'SOCKS5 proxy host'
complete -c mailcar -l proxy-port -x -d 'SOCKS5 proxy port (default 1080)'
complete -c mailcar -l proxy-user -x -d 'user name for the SOCKS5 proxy'
complete -c mailcar -l domain -x -d 'argument of EHLO or LHLO (default localhost)'
complete -c mailcar -l fallback-account -x -a '(__mailcar_accounts)' -d 'account to try when this one fails temporarily'
complete -c mailcar -l timeout -x -d 'time limit for each network step (off, N, Ns, Nm, Nh)'
complete -c mailcar -l connect-timeout -x -d 'time limit for connecting and the TLS handshake'
complete -c mailcar -l deadline -x -d 'time limit for the whole delivery'
complete -c mailcar -l auth -x -a 'on off plain login cram-md5 scram-sha-1 scram-sha-256 scram-sha-1-plus scram-sha-256-plus external oauthbearer xoauth2' -d 'authenticate: on, off, or a SASL mechanism name'
complete -c mailcar -l user -x -d 'user name for authentication'
complete -c mailcar -l passwordeval -x -a '(__fish_complete_command)' -d 'command whose first output line is the password'
complete -c mailcar -l password-file -r -F -d 'file whose first line is the password'
complete -c mailcar -l ntlmdomain -x -d 'domain for NTLM authentication (obsolete)'
complete -c mailcar -l tls -f -a 'on off' -d 'use TLS'
complete -c mailcar -l tls-starttls -f -a 'on off' -d 'start TLS with STARTTLS (on) or connect with TLS (off)'
complete -c mailcar -l tls-certcheck -f -a 'on off' -d 'verify the server certificate'
complete -c mailcar -l tls-trust-file -r -F -d 'file of trusted CA certificates, or \'system\''
complete -c mailcar -l tls-crl-file -r -F -d 'certificate revocation list file'
complete -c mailcar -l tls-fingerprint -x -d 'fingerprint of the one server certificate to trust'
complete -c mailcar -l tls-key-file -r -F -d 'private key of the client certificate'
complete -c mailcar -l tls-cert-file -r -F -d 'client certificate to present'
complete -c mailcar -l tls-host-override -x -a '(__fish_print_hostnames)' -d 'host name to check the certificate against'
complete -c mailcar -l tls-min-version -x -a 'tls1.2 tls1.3' -d 'lowest TLS version to accept'
complete -c mailcar -l tls-ciphers -x -d 'OpenSSL cipher list for TLS 1.2 and below'
complete -c mailcar -l tls-priorities -x -d 'TLS priority string (GnuTLS syntax, for msmtp files)'
complete -c mailcar -l tls-min-dh-prime-bits -x -d 'smallest Diffie-Hellman prime to accept (obsolete)'
complete -c mailcar -l tls-session-cache -r -F -d 'file that keeps TLS sessions for resumption'
complete -c mailcar -l tls-dane -f -a 'on off' -d 'check the certificate against DNSSEC-signed TLSA records'
complete -c mailcar -l from -x -d 'envelope sender; a glob here selects the account by -f'
complete -c mailcar -l from-full-name -x -d 'display name for a From header that mailcar writes'
complete -c mailcar -l allow-from-override -f -a 'on off' -d 'let -f replace the from address'
complete -c mailcar -l read-envelope-from -f -a 'on off' -d 'take the envelope sender from the From header'
complete -c mailcar -l read-recipients -f -a 'on off' -d 'take recipients from To, Cc and Bcc, like -t'
complete -c mailcar -l rewrite-from -f -a 'on off' -d 'make the From header\'s address the envelope sender'
complete -c mailcar -l qualify-domain -x -d 'domain added to addresses without one'
complete -c mailcar -l auto-from -f -a 'on off' -d 'make the envelope sender from user and maildomain (obsolete)'
complete -c mailcar -l maildomain -x -d 'domain for auto_from (obsolete)'
complete -c mailcar -l set-from-header -x -a 'auto on off' -d 'write a From header: auto (if missing), on, off'
complete -c mailcar -l set-date-header -x -a 'auto off' -d 'add a Date header when missing'
complete -c mailcar -l set-msgid-header -x -a 'auto off' -d 'add a Message-ID header when missing'
complete -c mailcar -l set-to-header -x -a 'on off' -d 'add \'To: undisclosed-recipients:;\' when no To or Cc'
complete -c mailcar -l remove-bcc-headers -f -a 'on off' -d 'remove Bcc headers before sending'
complete -c mailcar -l undisclosed-recipients -f -a 'on off' -d 'replace To, Cc and Bcc with undisclosed-recipients'
complete -c mailcar -l aliases -r -F -d 'aliases file for recipients without a domain'
complete -c mailcar -l dsn-notify -x -a 'off never success failure delay' -d 'off, never, or a list of failure,delay,success'
complete -c mailcar -l dsn-return -x -a 'off headers full' -d 'what a DSN returns: off, headers, full'
complete -c mailcar -l dsn-required -f -a 'on off' -d 'fail when dsn_* is set but the server lacks DSN'
complete -c mailcar -l partial-delivery -f -a 'on off' -d 'send to the recipients accepted when others are refused'
complete -c mailcar -l queue -f -a 'on off' -d 'queue the message when delivery fails temporarily'
complete -c mailcar -l queue-dir -x -a '(__fish_complete_directories)' -d 'directory of the queue'
complete -c mailcar -l queue-lifetime -x -d 'how long a queued message is retried'
complete -c mailcar -l queue-retry -x -d 'wait before the first retry, doubled each time'
complete -c mailcar -l queue-retry-max -x -d 'longest wait between retries'
complete -c mailcar -l logfile -r -F -d 'log file, or \'-\' for standard output'
complete -c mailcar -l logfile-time-format -x -d 'strftime format of log file time stamps'
complete -c mailcar -l syslog -f -a 'on off LOG_MAIL LOG_USER LOG_DAEMON LOG_LOCAL0 LOG_LOCAL1 LOG_LOCAL2 LOG_LOCAL3 LOG_LOCAL4 LOG_LOCAL5 LOG_LOCAL6 LOG_LOCAL7' -d 'syslog: on, off, or a facility (LOG_MAIL, LOG_LOCAL0...)'
