/**
 * Where a node's or a CLI command's signing key comes from. In order: an encrypted JSON keystore
 * (ethers / Web3 Secret Storage v3) named by `--keystore` or the config's `keystore`, decrypted with the
 * password in FEDSTAKE_KEYSTORE_PASSWORD; else the private key in FEDSTAKE_PRIVATE_KEY; else the
 * config's `privateKey` (the demo's development accounts). No key is ever guessed or defaulted.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { Wallet, type Provider } from "ethers";

export const KEY_ENV = "FEDSTAKE_PRIVATE_KEY";
export const PASSWORD_ENV = "FEDSTAKE_KEYSTORE_PASSWORD";

export class KeyError extends Error {
  override readonly name = "KeyError";
}

export interface KeySource {
  keystore?: string;
  privateKey?: string;
}

export async function loadWallet(src: KeySource, provider: Provider, env: NodeJS.ProcessEnv = process.env): Promise<Wallet> {
  if (src.keystore) {
    const password = env[PASSWORD_ENV];
    if (password === undefined) throw new KeyError(`keystore ${src.keystore}: set ${PASSWORD_ENV} to its password`);
    let json: string;
    try {
      json = readFileSync(src.keystore, "utf8");
    } catch (e) {
      throw new KeyError(`keystore ${src.keystore}: ${(e as Error).message}`);
    }
    try {
      return (await Wallet.fromEncryptedJson(json, password)).connect(provider) as Wallet;
    } catch (e) {
      throw new KeyError(`keystore ${src.keystore}: ${(e as Error).message.includes("password") ? "wrong password" : (e as Error).message}`);
    }
  }
  const key = env[KEY_ENV] ?? src.privateKey;
  if (!key) throw new KeyError(`no signing key: pass --keystore FILE (password in ${PASSWORD_ENV}) or set ${KEY_ENV}`);
  try {
    return new Wallet(key, provider);
  } catch {
    throw new KeyError(`${env[KEY_ENV] ? KEY_ENV : "the config's privateKey"} is not a valid private key`);
  }
}

/** Encrypts `wallet` into a keystore file (scrypt; the file is written owner-readable only). */
export async function writeKeystore(wallet: Wallet, file: string, password: string): Promise<void> {
  writeFileSync(file, await wallet.encrypt(password), { mode: 0o600 });
}
