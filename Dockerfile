# One image for every process of the dashboard (and the emulator); docker-compose.yml runs them.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
COPY dashboard ./dashboard
COPY metrics ./metrics
COPY acr_emulator ./acr_emulator
RUN pip install --no-cache-dir .
COPY . .
RUN DJANGO_SECRET_KEY=build-only python manage.py collectstatic --noinput -v 0
# .run/prometheus: the volume every process shares for its Prometheus counters (compose).
RUN useradd --create-home dashboard && mkdir -p .run/prometheus && chown -R dashboard .run
USER dashboard
EXPOSE 8000
ENV WEB_HOST=0.0.0.0 WEB_PORT=8000
CMD ["python", "-m", "dashboard.web"]
