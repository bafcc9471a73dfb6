from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "iridium.jobs"
    label = "jobs"
    verbose_name = "Periodic work"

    def ready(self):
        from django_tasks.signals import task_finished

        from .schedule import note_finished

        task_finished.connect(note_finished, dispatch_uid="iridium.jobs.note_finished")
