"""The offline math tutor: a lesson over one problem (attempts, checks, hints), hints that never give the
answer away, and saved tutor sessions.
"""
