"""Attachments (#11): where their contents live, how an upload is judged and made
safe, and how they reach the model's history.

- `storage`: the contents, addressed by SHA-256 per owner, in a local folder or any
  S3-compatible store (one interface, obstore underneath).
- `names`, `kinds`, `processing`: a file's name cleaned, its type found from its bytes,
  an image re-encoded, a PDF's text extracted; pure functions, run in a process pool.
- `uploads`: the multipart body read part by part, refused once it is too large.
- `service`: `Files`, which ties the three to the metadata in the database
  (`store/files.py`), and fills `Turn.attachments` for a generation.
"""
