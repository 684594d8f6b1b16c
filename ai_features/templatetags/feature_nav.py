"""Navigation links for every registered feature that has a page: a new
feature module shows up in the menu without touching templates."""

from django import template
from django.urls import NoReverseMatch, reverse

from ai_features.registry import all_features

register = template.Library()


@register.inclusion_tag("ai_features/_feature_links.html", takes_context=True)
def feature_nav_items(context):
    links = []
    for feature in all_features():
        if not feature.page_url_name:
            continue
        try:
            links.append({"name": feature.name, "url": reverse(feature.page_url_name)})
        except NoReverseMatch:
            continue
    return {"links": links, "request": context.get("request")}
