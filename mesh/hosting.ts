/**
 * Endpoints hosted here and endpoints hosted by peers (docs/mesh-protocol.md
 * §5.2–5.3): the handlers and signers of this node's endpoints, the hosting
 * claims it announces for them, and the check of a peer's claim to host a
 * recipient.
 *
 * @module
 */
import type { ReceiveOutcome } from "../bindings/binding.ts";
import { toHex } from "../bindings/validation.ts";
import {
  announcementTag,
  type EndpointSigner,
  type HostingClaim,
  makeHostingClaim,
  openClaim,
  sealClaim,
  type SignatureVerifier,
} from "./proofs.ts";
import type { MeshStore } from "./store.ts";
import type { ParcelHandler, PeerState } from "./types.ts";
import { CLAIM_LIFETIME_MS } from "./types.ts";

/** An endpoint hosted here: where its parcels go, and the identity that signs for it. */
export interface HostedEndpoint {
  readonly handler: ParcelHandler;
  readonly signer?: EndpointSigner;
  /** Its current hosting claim, signed again when a day of it is left. */
  claim?: HostingClaim;
}

/** What {@linkcode Hosting} needs. */
export interface HostingDeps {
  readonly store: MeshStore;
  readonly verifier: SignatureVerifier;
  /** This node's peer id: the one its hosting claims name. */
  readonly peerId: string;
  readonly now: () => Date;
  /** Reports a peer whose claim is false. */
  readonly misbehaved: (peer: string, reason: string) => void;
}

/** The endpoints this node hosts, and what peers proved they host. */
export class Hosting {
  readonly #endpoints = new Map<string, HostedEndpoint>();
  /** Parcels being handed to a hosted endpoint right now (after that, the store knows). */
  readonly handing = new Map<string, Promise<ReceiveOutcome>>();

  constructor(private readonly deps: HostingDeps) {}

  /** Hosts `endpointId`; returns its record (compare it to notice an unhost or a new host). */
  add(endpointId: string, handler: ParcelHandler, signer?: EndpointSigner): HostedEndpoint {
    const hosted = { handler, signer };
    this.#endpoints.set(endpointId, hosted);
    this.deps.store.noteKnownRecipient(endpointId, new Date(Date.now() + CLAIM_LIFETIME_MS));
    return hosted;
  }

  remove(endpointId: string): void {
    this.#endpoints.delete(endpointId);
  }

  get(endpointId: string): HostedEndpoint | undefined {
    return this.#endpoints.get(endpointId);
  }

  ids(): string[] {
    return [...this.#endpoints.keys()];
  }

  /** The announcements of the endpoints this node can prove it hosts, sealed under `nonce`. */
  announcements(nonce: Uint8Array): { tag: Uint8Array; sealed: Uint8Array }[] {
    const now = Date.now();
    const out = [];
    for (const [id, hosted] of this.#endpoints) {
      if (!hosted.signer) continue;
      if (!hosted.claim || hosted.claim.expiresAt.getTime() - now < 86_400_000) {
        hosted.claim = makeHostingClaim(
          hosted.signer,
          this.deps.peerId,
          new Date(now + CLAIM_LIFETIME_MS),
        );
      }
      out.push({ tag: announcementTag(id, nonce), sealed: sealClaim(hosted.claim, id, nonce) });
    }
    return out;
  }

  /**
   * Whether `peer` proved it hosts `recipientId`: its last HELLO carries a claim
   * under that id's tag, signed by the endpoint for this very peer id, unexpired.
   */
  peerHosts(peer: PeerState, recipientId: string): boolean {
    const known = peer.hosts.get(recipientId);
    if (known !== undefined) return known;
    let proven = false;
    if (peer.nonce && peer.announcements.size > 0) {
      const sealed = peer.announcements.get(toHex(announcementTag(recipientId, peer.nonce)));
      const claim = sealed && openClaim(sealed, recipientId, peer.nonce);
      if (sealed) {
        proven = !!claim &&
          this.deps.verifier.verifyClaim(claim, peer.id, this.deps.now()) === recipientId;
        if (proven) this.deps.store.noteKnownRecipient(recipientId, claim!.expiresAt);
        else {this.deps.misbehaved(
            peer.id,
            `hosting claim for ${recipientId.slice(0, 13)} is false`,
          );}
      }
    }
    peer.hosts.set(recipientId, proven);
    return proven;
  }
}
