"""Reads from support."""

from django.db.models import Q

from .models import Article


def search_articles(query: str, *, limit: int = 5):
    """Published articles matching any word of `query` in title, body or tags, best first."""
    words = [w for w in query.split() if len(w) > 2][:10]
    if not words:
        return []
    matches = Q()
    for word in words:
        matches |= Q(title__icontains=word) | Q(body__icontains=word) | Q(tags__icontains=word)
    articles = list(Article.objects.filter(matches, published=True)[:50])

    def score(article):
        text = f"{article.title} {article.title} {article.tags} {article.body}".lower()
        return sum(text.count(word.lower()) for word in words)

    return sorted(articles, key=score, reverse=True)[:limit]
