"""One APIRouter per resource: analysis, jobs, the session, operations and the web form."""
