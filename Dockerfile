# One image for the API and the workers. For GPU workers build with
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 .
FROM node:20-bookworm-slim AS frontend
WORKDIR /app/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim-bookworm
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PREFAUDIT_DATA_DIR=/data PREFAUDIT_FRONTEND_DIR=/app/frontend/dist
RUN pip install --no-cache-dir --index-url ${TORCH_INDEX} torch==2.13.0
COPY pyproject.toml README.md alembic.ini ./
COPY backend/ backend/
COPY worker/ worker/
COPY migrations/ migrations/
RUN pip install --no-cache-dir -e .
COPY --from=frontend /app/frontend/dist /app/frontend/dist
EXPOSE 8000
CMD ["prefaudit", "serve", "--host", "0.0.0.0", "--port", "8000"]
