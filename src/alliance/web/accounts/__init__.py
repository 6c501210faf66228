"""User accounts. For now only the user model; roles and login come with the web app."""
