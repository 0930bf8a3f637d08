/** An xDS client's node id as the admin takes it and `switchboard xds-bootstrap` writes it: 1-256 visible ASCII characters. */
export const XDS_NODE_ID = /^[\x21-\x7e]{1,256}$/;
