export * from './control-plane';
