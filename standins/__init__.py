"""Local stand-ins for the outside services Tollgate talks to (Stripe, the OpenAI
API). Used by the run command's demo mode and by the tests; never imported by the
product apps (an import-linter contract enforces it). See README.md."""
