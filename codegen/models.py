from django.conf import settings
from django.db import models

from iridium.infra.markdown import code_blocks
from iridium.live.models import StreamedAnswer

LANGUAGES = [
    ("python", "Python"),
    ("javascript", "JavaScript"),
    ("typescript", "TypeScript"),
    ("go", "Go"),
    ("rust", "Rust"),
    ("java", "Java"),
    ("csharp", "C#"),
    ("sql", "SQL"),
    ("bash", "Bash"),
    ("html", "HTML"),
    ("css", "CSS"),
]
FILE_EXTENSIONS = {
    "python": "py", "javascript": "js", "typescript": "ts", "go": "go", "rust": "rs",
    "java": "java", "csharp": "cs", "sql": "sql", "bash": "sh", "html": "html", "css": "css",
}  # fmt: skip


class Creation(StreamedAnswer):
    """A code snippet or a piece of writing, kept in its author's history (and only theirs)."""

    class Kind(models.TextChoices):
        CODE = "code", "Code"
        CONTENT = "content", "Content"

    class Complexity(models.TextChoices):
        SIMPLE = "simple", "Simple"
        ADVANCED = "advanced", "Advanced"

    class Tone(models.TextChoices):
        PROFESSIONAL = "professional", "Professional"
        FRIENDLY = "friendly", "Friendly"
        PLAYFUL = "playful", "Playful"
        FORMAL = "formal", "Formal"

    class ContentType(models.TextChoices):
        BLOG_POST = "blog-post", "Blog post"
        PRODUCT_DESCRIPTION = "product-description", "Product description"
        EMAIL = "email", "Email"
        SOCIAL_POST = "social-post", "Social post"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="creations"
    )
    kind = models.CharField(max_length=10, choices=Kind)
    prompt = models.TextField(help_text="What to build, or the topic to write about.")
    trace_id = models.CharField(max_length=100)
    # Code
    language = models.CharField(max_length=20, choices=LANGUAGES, blank=True)
    framework = models.CharField(max_length=50, blank=True)
    complexity = models.CharField(max_length=10, choices=Complexity, blank=True)
    # Content
    tone = models.CharField(max_length=20, choices=Tone, blank=True)
    content_type = models.CharField(max_length=30, choices=ContentType, blank=True)
    target_length = models.PositiveIntegerField(null=True, blank=True, help_text="Words.")

    class Meta(StreamedAnswer.Meta):
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.kind}: {self.prompt[:40]}"

    INTERRUPTED = "The generation was interrupted. Retry to run it again."

    ai_session_id = ""  # a creation is one turn: its trace stands alone

    @property
    def ai_feature(self) -> str:
        return "code-generation" if self.kind == self.Kind.CODE else "content-generation"

    @property
    def author_label(self) -> str:
        return "Result"

    @property
    def title(self) -> str:
        first_line = self.prompt.strip().splitlines()[0] if self.prompt.strip() else ""
        return first_line[:80]

    @property
    def download_text(self) -> str:
        """What Download saves: a snippet's code only (its code blocks, without the prose and
        fences around them; the whole answer when it is bare code); writing as Markdown."""
        if self.kind != self.Kind.CODE:
            return self.content
        blocks = code_blocks(self.content)
        return "\n".join(blocks) if blocks else self.content

    @property
    def download_name(self) -> str:
        extension = FILE_EXTENSIONS.get(self.language, "md") if self.kind == "code" else "md"
        return f"iridium-{self.kind}-{self.pk}.{extension}"
