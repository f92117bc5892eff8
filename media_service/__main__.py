from media_service.cli import run

run()
