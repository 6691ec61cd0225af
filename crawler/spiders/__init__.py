"""Scrapy spiders (``scrapy crawl column -a source=NAME``)."""
