"""CI plumbing: the job around the repository, not the repository itself.

Which run this is (`event`), what goes back to the runner (`output`), the run directory's JSON
documents (`documents`), the forges' size limits and our hidden marker (`limits`), the write
tokens kept from repository code (`tokens`) and the trust boundary for what a pull request can
shape (`untrusted/`).
"""
