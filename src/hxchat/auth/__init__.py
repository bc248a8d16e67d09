"""Accounts: who is asking, and how much they may do.

- `secrets`: the random secrets of sessions and API tokens, and their digests.
- `passwords`: argon2id hashes (pwdlib), checked in a thread, the same time for an
  unknown user as for a wrong password.
- `identity`: a session cookie or a Bearer token -> the user, checked against the
  database at least once a second.
- `middleware`: the pure ASGI middleware that puts the user on every request, or
  sends the request to sign in.
- `limits`: the per-owner message rate and running answers, and the sign-in lockout,
  on the `limits` library (memory, or Redis shared by every worker).
- `users`: the account operations shared by the pages, the API and the command line.
"""
