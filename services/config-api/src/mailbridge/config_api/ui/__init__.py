"""The Email tab's static files: email.html, email.js, email.css (served by entrypoints/http/ui)."""
