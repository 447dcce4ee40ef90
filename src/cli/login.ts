import type { Command } from 'commander';
import { BerthError } from '../errors.js';
import type { CliContext } from './context.js';


interface LoginOptions {
  username: string;
  passwordStdin?: boolean;
  tlsVerify: string;
}

/** `berth login REGISTRY -u USER --password-stdin` and `berth logout REGISTRY`. */
export function registerLogin(program: Command, context: () => CliContext): void {
  program
    .command('login')
    .description('check credentials against a registry and store them for pulls (<root>/auth.json, mode 0600)')
    .argument('<registry>', 'registry host, e.g. docker.io or registry.example.com:5000')
    .requiredOption('-u, --username <user>', 'user name')
    .option('--password-stdin', 'read the password from stdin (the only way: never on the command line)')
    .option('--tls-verify <bool>', 'verify the registry TLS certificate', 'true')
    .action(async (registryArg: string, opts: LoginOptions) => {
      const [{ checkLogin }, { CredentialStore, normalizeRegistry }, { registryCa }, { parseBool }] = await Promise.all([
        import('../image/registry/client.js'), import('../image/registry/credentials.js'), import('../image/registry/open.js'), import('./registry.js'),
      ]);
      const ctx = context();
      const registry = normalizeRegistry(registryArg);
      if (registry === '') throw new BerthError('usage', 'login: the registry is empty');
      if (!opts.passwordStdin) throw new BerthError('usage', 'login: pass --password-stdin and the password on stdin', { hint: `printf '%s' "$PASSWORD" | berth login ${registry} -u ${opts.username} --password-stdin` });
      const tlsVerify = parseBool(opts.tlsVerify, '--tls-verify');
      const password = (await readStdin(process.stdin)).replace(/\r?\n$/, '');
      if (password === '') throw new BerthError('invalid', 'login: the password on stdin is empty');
      const credentials = { username: opts.username, password };
      const ca = registryCa(ctx, registry);
      // Someone is waiting at the terminal: fail fast rather than back off for long.
      await checkLogin(registry, credentials, { tlsVerify, retry: { attempts: 3 }, ...(ca && { ca }) });
      new CredentialStore(ctx.root, ctx.env).set(registry, credentials);
      ctx.out.write('Login Succeeded\n');
    });

  program
    .command('logout')
    .description("remove berth's stored credentials for a registry (Docker's config.json is left alone)")
    .argument('<registry>', 'registry host')
    .action(async (registryArg: string) => {
      const { CredentialStore, normalizeRegistry } = await import('../image/registry/credentials.js');
      const ctx = context();
      const registry = normalizeRegistry(registryArg);
      const store = new CredentialStore(ctx.root, ctx.env);
      if (store.remove(registry)) ctx.out.write(`Removed login credentials for ${registry}\n`);
      else if (store.get(registry)) ctx.out.write(`berth stores no credentials for ${registry}; the ones in ${store.dockerPath} are Docker's and stay\n`);
      else ctx.out.write(`Not logged in to ${registry}\n`);
    });
}

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}
