"""A small reference application in the staging guide's stack.

It keeps Google credentials in its own ``credentials`` table (Fernet-sealed JSON), refreshes them
with google-auth, calls the Gmail profile, and runs that job in a Celery worker (Redis broker).
Two variants of the job: ``right`` and ``naive`` (see README.md beside this package).
"""
