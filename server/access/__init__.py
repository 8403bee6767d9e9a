"""Who may do what: credentials, users, sessions, profiles, organizations, members, roles and
invitations, and a request's opening (the credential check and the org scope in one round trip).
"""
