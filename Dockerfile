# The engine image: `node dist/main.js` (the daemon); the same image runs the CLI
# (`node dist/cli.js generate ...` for the compose stack's generator).
#
#   docker build -t insights-engine:local .
#
# Two stages: the build stage has the dev dependencies (TypeScript), the runtime stage only
# the production ones.

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied, and the `node` dev
# dependency would download a second Node.js; the image's own Node 24 is used instead.
RUN npm ci --ignore-scripts && rm -f node_modules/.bin/node
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-slim
ENV NODE_ENV=production \
    HTTP_PORT=8081 \
    LAKE_DIR=/var/lib/insights/lake
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
COPY data ./data
RUN mkdir -p /var/lib/insights/lake && chown -R node:node /var/lib/insights
USER node
EXPOSE 8081
CMD ["node","dist/main.js"]
