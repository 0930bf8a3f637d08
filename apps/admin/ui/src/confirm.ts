/** Asks before an action, in a modal <dialog> (focus trapped, Escape cancels). */
export function confirmAction(text: string): Promise<boolean> {
  const dialog = document.getElementById('confirm') as HTMLDialogElement;
  (document.getElementById('confirm-text') as HTMLElement).textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.returnValue = 'cancel';
    dialog.showModal();
    (document.getElementById('confirm-ok') as HTMLButtonElement).focus();
  });
}
