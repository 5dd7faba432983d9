/** Keys: `keystore create`. */
import { resolve } from "node:path";
import type { Command } from "commander";
import { Wallet } from "ethers";
import { KEY_ENV, PASSWORD_ENV, writeKeystore } from "../../worker/chain/keys.ts";
import { jsonOption, option, printJson, UsageError } from "./common.ts";

export function registerKeystore(program: Command): void {
  const keystore = program.command("keystore").summary("encrypted key files").description("Encrypted key files (Web3 Secret Storage v3, scrypt).");
  keystore
    .command("create")
    .summary(`encrypts $${KEY_ENV} (or a new key) into a keystore file`)
    .description(`Encrypts $${KEY_ENV} (or, without it, a new random key) into a keystore file with the password in $${PASSWORD_ENV}; the file is owner-readable only.`)
    .addOption(option("--out <FILE>", "the keystore file to write").makeOptionMandatory())
    .addOption(jsonOption())
    .action(async (o: { out: string; json?: boolean }) => {
      const password = process.env[PASSWORD_ENV];
      if (!password) throw new UsageError(`set ${PASSWORD_ENV} to the password to encrypt with`);
      const key = process.env[KEY_ENV];
      let wallet: Wallet;
      try {
        wallet = key ? new Wallet(key) : (Wallet.createRandom() as unknown as Wallet);
      } catch {
        throw new UsageError(`${KEY_ENV} is not a valid private key`);
      }
      await writeKeystore(wallet, o.out, password);
      if (o.json) return printJson({ address: wallet.address, out: resolve(o.out), created: !key });
      console.log(`${key ? "encrypted" : "created"} ${wallet.address} → ${o.out}`);
    });
}
