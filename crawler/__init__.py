"""Crawling: Scrapy spiders, items, pipelines, and page parsing as pure functions over HTML."""
