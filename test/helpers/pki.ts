/**
 * A throwaway PKI made with openssl for TLS tests: CAs `ca` and `other-ca`, a worker certificate for
 * 127.0.0.1 / localhost signed by `ca`, a gateway client certificate signed by `ca` and a `stranger`
 * client certificate signed by `other-ca`. Files are `<name>.pem` and `<name>.key` in the folder.
 */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export async function makeTestPki(dir: string): Promise<(name: string) => string> {
  const openssl = (...args: string[]) =>
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ca = (name: string) =>
    openssl(
      'req',
      '-x509',
      ...EC,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
    );
  const cert = async (name: string, signer: string, extensions: string) => {
    await writeFile(join(dir, `${name}.ext`), `${extensions}\n`);
    openssl('req', ...EC, '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    // prettier-ignore
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${signer}.pem`, '-CAkey', `${signer}.key`, '-CAcreateserial',
      '-days', '2', '-out', `${name}.pem`, '-extfile', `${name}.ext`);
  };
  ca('ca');
  ca('other-ca');
  await cert('worker', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
  await cert('gateway', 'ca', 'extendedKeyUsage=clientAuth');
  await cert('stranger', 'other-ca', 'extendedKeyUsage=clientAuth');
  return (name) => join(dir, name);
}
