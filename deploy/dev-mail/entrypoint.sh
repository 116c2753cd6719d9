#!/bin/sh
# DEVELOPMENT ONLY: start the mailbridge dev-mail server (Dovecot + Postfix) in the foreground.
set -eu

domain="${DEV_MAIL_DOMAIN:-example.test}"
user="${DEV_MAIL_USER:-demo@${domain}}"
password="${DEV_MAIL_PASSWORD:-}"
cert=/etc/dev-mail/tls/cert.pem
key=/etc/dev-mail/private/key.pem

echo "dev-mail: DEVELOPMENT ONLY - self-signed TLS, demo credentials; do not expose." >&2

# Self-signed certificate: made on first start. The key never leaves the container; the
# certificate sits on a volume that clients (mail-worker) can mount to trust it.
if [ ! -s "$key" ] || [ ! -s "$cert" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -sha256 \
        -subj "/CN=dev-mail" \
        -addext "subjectAltName=DNS:dev-mail,DNS:localhost,DNS:mail.${domain},IP:127.0.0.1" \
        -keyout "$key" -out "$cert" 2>/dev/null
    chmod 0600 "$key"
    chmod 0644 "$cert"
    echo "dev-mail: generated a self-signed certificate at $cert" >&2
fi

postconf -e "myhostname=mail.${domain}" "mydomain=${domain}" "virtual_mailbox_domains=${domain}"

if [ -z "$password" ]; then
    password="$(openssl rand -base64 18)"
    echo "dev-mail: DEV_MAIL_PASSWORD unset; generated password for ${user}: ${password}" >&2
fi
printf '%s:%s\n' "$user" "$(doveadm pw -s SHA512-CRYPT -p "$password")" > /etc/dovecot/users
chown root:dovecot /etc/dovecot/users
chmod 0640 /etc/dovecot/users
echo "dev-mail: mailbox ${user} (IMAP 993 TLS; SMTP 587 STARTTLS, 465 TLS)" >&2

install -d -o vmail -g vmail -m 0750 /var/mail/vmail
install -d -o postfix -g root -m 0700 /var/spool/postfix/private
dovecot
exec postfix start-fg
