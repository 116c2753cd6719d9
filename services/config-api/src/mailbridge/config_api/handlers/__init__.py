"""config-api's use cases, one async function each, framework-free, by resource.

Each takes its inputs and the ports it needs, and returns what the caller shows:

- ``agents``: register an agent; load one as its caller may see it (another org's is a 404)
- ``email_config``: show, save (secrets sealed), delete; open the credentials for the mail-worker
- ``connection_test``: run a test through a mail-worker and wait for it; the automatic one after
  an OAuth authorization
- ``oauth_flows``: OAuth sign-ins, kept by the oauth-broker: begin, start, complete, look at
- ``oauth_app``: the OAuth app (its secret opened) the oauth-broker signs an agent in with
- ``mailbox_status``: the status badge, changed by test results and failures (a pure decision
  inside the repository's transaction, stored with its events: the outbox)
- ``sends``: HTTP sends queued under an Idempotency-Key, settled by the workers' events
- ``orgs``: ``/bridge/orgs/…`` forwarded to policy, and the banners an agent's config shows
- ``detection``: the IMAP/SMTP settings an address most likely has (presets, MX, autoconfig, SRV)
- ``ui_sessions``: the Email tab's sessions: a link for one agent, exchanged once for a cookie,
  renewed, ended
"""
