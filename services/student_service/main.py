"""student-service's ASGI app: ``uvicorn services.student_service.main:app``."""

from services.student_service.app import build_app
from services.student_service.settings import StudentServiceSettings

app = build_app(StudentServiceSettings())
